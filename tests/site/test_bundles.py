"""Challenge bundles: export → import round trips; Codabench bundles; bad bundles refused whole.

Bad bundles tried: not a zip; no challenge.yaml nor competition.yaml; invalid YAML; a missing
required key; a wrong type; an unknown key; an unknown metric; a phase naming no test set; a
file the YAML names but the zip lacks; a path escaping the zip (in the zip and in the YAML);
a zip bomb (ratio and total size); a slug already taken; a truth the evaluator refuses
(nothing created, no truth file left behind); a Codabench bundle without task type.
"""

import io
import os
import zipfile
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from mica.bundles.importing import import_bundle
from mica.bundles.mica_format import export_bundle
from mica.bundles.reading import BundleError
from mica.challenges.models import Challenge, Phase
from mica.core.storage import private_storage

from .conftest import make_user

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHALLENGE_FIELDS = ["title", "description", "terms", "task_type", "registration", "allowed_email_domains",
                    "team_size_limit", "team_merge_deadline"]
PHASE_FIELDS = ["name", "description", "starts_at", "ends_at", "primary_metric", "secondary_metrics",
                "metric_options", "score_precision", "daily_limit", "total_limit", "concurrent_limit", "selection",
                "max_selected", "visibility", "blind"]


def zipped(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    buffer.seek(0)
    return buffer


def folder_zip(folder):
    return zipped({str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
                   if path.is_file()})


@pytest.fixture
def importer(db):
    user = make_user("ivan")
    user.user_permissions.add(Permission.objects.get(codename="add_challenge", content_type__app_label="challenges"))
    return user


@pytest.fixture
def rich_phases(challenge, phase):
    """A second phase with every rule set away from its default, sanity-checked by the first."""
    challenge.allowed_email_domains = "uni-a.edu"
    challenge.registration = Challenge.Registration.DOMAINS
    challenge.team_size_limit = 4
    challenge.team_merge_deadline = phase.starts_at
    challenge.save()
    return Phase.objects.create(
        challenge=challenge, name="Final test", description="The *last* phase.", test_set=phase.test_set,
        starts_at=phase.ends_at, ends_at=phase.ends_at.replace(year=phase.ends_at.year + 1),
        primary_metric="log_loss", secondary_metrics=["auc", "sensitivity"], metric_options={"threshold": 0.3},
        score_precision=3, daily_limit=2, total_limit=10, concurrent_limit=1, selection="selected", max_selected=3,
        visibility="participants", blind=True, parent=phase,
    )


def settings_of(challenge):
    phases = [
        {**{f: getattr(p, f) for f in PHASE_FIELDS}, "test_set": p.test_set.name,
         "parent": p.parent.name if p.parent else None}
        for p in challenge.phases.order_by("starts_at")
    ]
    test_sets = [
        {"name": t.name, "private_fraction": t.private_fraction, "split_seed": t.split_seed,
         "split_stratified": t.split_stratified,
         "cases": sorted(t.cases.values_list("case_id", "split", "patient")),
         "truth": t.latest_version.file.open("rb").read()}
        for t in challenge.test_sets.order_by("pk")
    ]
    return {f: getattr(challenge, f) for f in CHALLENGE_FIELDS}, test_sets, phases


def test_export_then_import_gives_the_same_settings(challenge, rich_phases, importer):
    bundle = export_bundle(challenge, with_truth=True)
    result = import_bundle(io.BytesIO(bundle), user=importer, slug="pneumonia-copy")
    copy = result.challenge
    assert result.unmapped == []
    assert copy.state == Challenge.State.DRAFT and copy.is_organizer(importer)
    assert settings_of(copy) == settings_of(challenge)
    # Exporting the copy gives the same bundle, but for the slug.
    again = zipfile.ZipFile(io.BytesIO(export_bundle(copy, with_truth=True)))
    first = zipfile.ZipFile(io.BytesIO(bundle))
    assert again.namelist() == first.namelist()
    assert yaml.safe_load(again.read("challenge.yaml"))["phases"] == yaml.safe_load(first.read("challenge.yaml"))["phases"]


def test_a_bundle_without_truth_keeps_the_settings_and_lists_the_phases_it_cannot_create(challenge, phase, importer):
    bundle = export_bundle(challenge)
    names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    assert names == ["challenge.yaml", "description.md", "terms.md"]  # no truth in it
    result = import_bundle(io.BytesIO(bundle), user=importer, slug="pneumonia-review")
    assert result.challenge.description == challenge.description and result.challenge.terms == challenge.terms
    assert result.challenge.phases.count() == 0
    assert result.unmapped == [
        "test set 'Hidden test set': no truth in the bundle; upload it, then create the phases that use it",
        "phase 'Final': not created, its test set 'Hidden test set' has no truth in the bundle",
    ]


def test_a_codabench_bundle_is_imported_with_its_unmapped_items_listed(importer):
    result = import_bundle(folder_zip(FIXTURES / "codabench_chest_xray"), user=importer, task_type="classification")
    challenge = result.challenge
    assert challenge.slug == "chest-x-ray-pneumonia-detection-2026"
    assert challenge.title == "Chest X-ray Pneumonia Detection 2026"
    assert challenge.registration == "approval"  # registration_auto_approve: False
    assert "not to re-identify" in challenge.terms
    assert "## Overview" in challenge.description and "<b>40</b> radiographs" in challenge.description
    development, final = challenge.phases.order_by("starts_at")
    assert (development.name, development.daily_limit, development.total_limit) == ("Development", 5, 100)
    assert (final.name, final.daily_limit, final.total_limit) == ("Final", 1, 3)
    assert development.starts_at.isoformat() == "2026-01-15T00:00:00+00:00"  # month-day-year
    assert development.ends_at.isoformat() == "2026-03-31T00:00:00+00:00"
    assert (final.ends_at - final.starts_at).days == 365
    assert development.primary_metric == "auc" and development.secondary_metrics == ["log_loss"]
    assert development.test_set.name == "Development Task" and final.test_set.name == "Final Task"
    assert development.test_set.split_counts() == {"public": 20}
    assert final.test_set.split_counts() == {"public": 24}
    unmapped = "\n".join(result.unmapped)
    for expected in [
        "image: not mapped", "docker_image: not mapped", "enable_detailed_results: not mapped",
        "contact_email: not mapped", "solutions: not mapped", "pages: appended to the description",
        "tasks[0].scoring_program: not run; Mica scores with its evaluator's metrics (auc, log_loss)",
        "tasks[0].input_data: not mapped", "tasks[0].is_public: not mapped",
        "phases[0].execution_time_limit: not mapped", "phases[0].starting_kit: not mapped",
        "phases[1].auto_migrate_to_this_phase: not mapped", "phases[1] (Final): no end",
        "leaderboards[0].columns[1] (log_loss): sorted desc, but log_loss is lower-is-better",
        "leaderboards[0].columns[2] (duration): not a metric of classification tasks",
    ]:
        assert expected in unmapped


def test_a_codabench_bundle_needs_its_task_type(importer):
    with pytest.raises(BundleError, match="task_type: a Codabench bundle does not say"):
        import_bundle(folder_zip(FIXTURES / "codabench_chest_xray"), user=importer)


def mica_bundle(challenge, edit=None, extra=None, drop=()):
    files = {name: content for name, content in _files(export_bundle(challenge, with_truth=True)).items()
             if name not in drop}
    document = yaml.safe_load(files["challenge.yaml"])
    if edit:
        edit(document)
    files["challenge.yaml"] = yaml.safe_dump(document).encode()
    files.update(extra or {})
    return zipped(files)


def _files(content):
    archive = zipfile.ZipFile(io.BytesIO(content))
    return {name: archive.read(name) for name in archive.namelist()}


def refused(source, importer, **options):
    before = (Challenge.objects.count(), _stored_truths())
    with pytest.raises(BundleError) as caught:
        import_bundle(source, user=importer, **options)
    assert (Challenge.objects.count(), _stored_truths()) == before  # nothing half-created
    return caught.value.problems


def _stored_truths():
    root = Path(private_storage().location) / "truth"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _set(path, value):
    def edit(document):
        *parents, last = path
        target = document
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return edit


@pytest.mark.parametrize("edit, problem", [
    (_set(["challenge", "title"], KeyError), "challenge.yaml: challenge.title: missing (required)"),
    (_set(["phases", 0, "daily_limit"], "five"),
     "challenge.yaml: phases[0].daily_limit: expected a whole number, got text"),
    (_set(["phases", 0, "blind"], "yes"), "challenge.yaml: phases[0].blind: expected true or false, got text"),
    (_set(["phases", 0, "starts_at"], "soon"), "challenge.yaml: phases[0].starts_at: expected a date and time"),
    (_set(["phases", 0, "primary_metric"], "accuracy"),
     "challenge.yaml: phases[0].primary_metric: 'accuracy' is not a metric of classification tasks"),
    (_set(["phases", 0, "secondary_metrics"], ["dice"]),
     "challenge.yaml: phases[0].secondary_metrics: 'dice' is not a metric of classification tasks"),
    (_set(["phases", 0, "metric_options"], {"smoothing": 1}),
     "challenge.yaml: phases[0].metric_options: classification tasks have no option 'smoothing'"),
    (_set(["phases", 0, "test_set"], "Another"), "challenge.yaml: phases[0].test_set: names no test set"),
    (_set(["phases", 0, "visibility"], "friends"), "challenge.yaml: phases[0].visibility: must be one of"),
    (_set(["phases", 0, "colour"], "blue"), "challenge.yaml: phases[0].colour: unknown key"),
    (_set(["challenge", "task_type"], "ranking"), "challenge.yaml: challenge.task_type: must be one of"),
    (_set(["mica_bundle"], 7), "challenge.yaml: mica_bundle: this site reads version 1 bundles"),
    (_set(["challenge", "terms"], "../../etc/passwd"),
     "challenge.yaml: challenge.terms: the path '../../etc/passwd' leaves the bundle"),
    (_set(["challenge", "terms"], "rules.md"), "challenge.yaml: challenge.terms: the bundle has no file 'rules.md'"),
    (_set(["phases", 0, "ends_at"], "2000-01-01T00:00:00Z"), "challenge.yaml: phases[0].ends_at: The phase must end"),
    (_set(["phases", 0, "score_precision"], 40), "challenge.yaml: phases[0].score_precision: Between 1 and 15"),
])
def test_a_bad_bundle_is_refused_naming_the_key(challenge, phase, importer, edit, problem):
    problems = refused(mica_bundle(challenge, edit), importer, slug="copy")
    assert any(line.startswith(problem) for line in problems), problems


def test_a_truth_the_evaluator_refuses_leaves_nothing_behind(challenge, phase, importer):
    truth_name = next(n for n in _files(export_bundle(challenge, with_truth=True)) if n.endswith("1-hidden-test-set.csv"))
    problems = refused(mica_bundle(challenge, extra={truth_name: b"case_id,pneumonia\na,maybe\n"}), importer,
                       slug="copy")
    assert problems[0].startswith("challenge.yaml: test_sets[0].truth: ")


def test_a_second_test_set_failing_removes_the_first_ones_truth(challenge, phase, importer, truth):
    def two_test_sets(document):
        document["test_sets"].append({**document["test_sets"][0], "name": "Broken", "truth": "broken.csv",
                                      "cases": document["test_sets"][0]["cases"]})
    problems = refused(mica_bundle(challenge, two_test_sets, extra={"broken.csv": b"no,header\n"}), importer,
                       slug="copy")
    assert problems[0].startswith("challenge.yaml: test_sets[1].truth: ")


def test_a_taken_slug_is_refused(challenge, phase, importer):
    problems = refused(mica_bundle(challenge), importer)
    assert problems == ["challenge.yaml: challenge.slug: this site already has a challenge 'pneumonia'; "
                        "import it under another slug"]


@pytest.mark.parametrize("source, problem", [
    (io.BytesIO(b"not a zip at all"), "the bundle is not a zip archive"),
    (zipped({"README.md": b"hi"}), "the bundle has neither a challenge.yaml (Mica) nor a competition.yaml"),
    (zipped({"challenge.yaml": b"phases: [unclosed"}), "challenge.yaml, line 1: not valid YAML"),
    (zipped({"challenge.yaml": b"- a list"}), "challenge.yaml: expected a mapping of keys at the top"),
    (zipped({"challenge.yaml": b"mica_bundle: 1\n", "../escape.md": b"x"}),
     "'../escape.md': a path that leaves the bundle"),
    (zipped({"challenge.yaml": b"mica_bundle: 1\n", "/etc/cron.d/x": b"x"}),
     "'/etc/cron.d/x': a path that leaves the bundle"),
    (zipped({"challenge.yaml": b"mica_bundle: 1\n", "bomb.bin": bytes(50 * 1024 * 1024)}),
     "'bomb.bin': inflates"),
])
def test_a_broken_or_hostile_zip_is_refused(importer, source, problem):
    problems = refused(source, importer)
    assert any(line.startswith(problem) for line in problems), problems


@override_settings(MICA_MAX_BUNDLE_BYTES=1000)
def test_a_bundle_larger_than_the_limit_is_refused_before_it_is_read(importer):
    problems = refused(zipped({"challenge.yaml": b"mica_bundle: 1\n", "data.bin": os.urandom(2000)}), importer)
    assert problems == ["the bundle inflates to 2015 bytes; at most 1000 (MICA_MAX_BUNDLE_BYTES)"]


def test_the_management_commands_export_and_import(challenge, rich_phases, importer, tmp_path):
    path = tmp_path / "bundle.zip"
    call_command("export_challenge", "pneumonia", str(path), "--with-truth", stdout=io.StringIO())
    out = io.StringIO()
    call_command("import_challenge", str(path), "--organizer", "ivan", "--slug", "moved", stdout=out)
    assert "Created the draft challenge 'moved'" in out.getvalue()
    assert settings_of(Challenge.objects.get(slug="moved")) == settings_of(challenge)
    with pytest.raises(CommandError, match="this site already has a challenge 'moved'"):
        call_command("import_challenge", str(path), "--organizer", "ivan", "--slug", "moved")


def test_the_import_page_lists_problems_and_what_was_not_imported(client, importer):
    client.force_login(importer)
    bad = client.post("/bundles/import/", {"bundle": SimpleUploadedFile("b.zip", b"nope")})
    assert bad.status_code == 400 and "the bundle is not a zip archive" in bad.content.decode()
    good = client.post("/bundles/import/", {
        "bundle": SimpleUploadedFile("b.zip", folder_zip(FIXTURES / "codabench_chest_xray").getvalue()),
        "task_type": "classification", "slug": "chest",
    })
    assert good.status_code == 201
    assert "docker_image: not mapped" in good.content.decode()
    assert Challenge.objects.get(slug="chest").is_organizer(importer)


def test_the_api_imports_and_answers_400_with_the_problems(client, challenge, phase, importer):
    client.force_login(importer)
    response = client.post("/api/v1/bundles/", {"bundle": SimpleUploadedFile("b.zip", b"nope")})
    assert response.status_code == 400 and response.json()["bundle"] == ["the bundle is not a zip archive"]
    client.force_login(challenge.created_by)
    content = client.get("/api/v1/bundles/pneumonia/?truth=1").content
    client.force_login(importer)
    response = client.post("/api/v1/bundles/", {"bundle": SimpleUploadedFile("b.zip", content), "slug": "again"})
    assert response.status_code == 201, response.content
    assert response.json() == {"challenge": "again", "unmapped": []}


@pytest.mark.parametrize("who, export, export_truth, importing", [
    ("anonymous", 302, 302, 302),
    ("outsider", 403, 403, 403),
    ("rival", 403, 403, 403),
    ("participant", 403, 403, 403),
    ("annotator", 403, 403, 403),
    ("organizer", 200, 200, 403),  # organizing one challenge does not let one create others
    ("co_organizer", 200, 200, 403),
    ("staff", 200, 200, 403),
    ("importer", 403, 403, 200),
])
def test_it_checks_access(request, client, challenge, team, rival, who, export, export_truth, importing):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    assert client.get("/bundles/challenges/pneumonia/bundle.zip").status_code == export
    assert client.get("/bundles/challenges/pneumonia/bundle.zip?truth=1").status_code == export_truth
    assert client.get("/bundles/challenges/pneumonia/").status_code == export
    assert client.get("/bundles/import/").status_code == importing
    api_export = client.get("/api/v1/bundles/pneumonia/").status_code
    assert api_export == ({302: 401}.get(export, export))
    api_import = client.post("/api/v1/bundles/", {}).status_code
    assert api_import == {302: 401, 200: 400}.get(importing, importing)
