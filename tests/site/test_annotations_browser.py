"""Readers in a real browser (Debian's chromium): two readers draw boxes on the same case, a reload
shows what was autosaved, and a third person adjudicates by taking one reader's box."""

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connections

from mica.annotations.models import Adjudication, AnnotationProject, Assignment, Label
from mica.challenges.models import ChallengeRole, Role

from .conftest import PASSWORD, make_user
from .imaging import ingested_dataset
from .test_browser import browser, wait_until  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

VIEWER_BUNDLE = Path(settings.BASE_DIR) / "platform/mica/annotations/static/annotations/viewer/viewer.js"


@pytest.fixture(autouse=True)
def viewer_bundle():
    assert VIEWER_BUNDLE.exists(), "the viewer is not bundled: run `make viewer` (make test does)"


def log_in(browser, live_server, user):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


def draw_box(page, start, end):
    canvas = page.locator(".viewer-canvas").first
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=5)
    page.mouse.up()


@pytest.fixture
def project(challenge, organizer, annotator, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="series")
    # One case is enough to see two readers meet: keep the radiograph series only.
    keep = dataset.cases.filter(series__modality="DX").order_by("case_id").first()
    dataset.cases.exclude(pk=keep.pk).delete()
    project = AnnotationProject.objects.create(dataset=dataset, title="Opacities", readers_per_case=2,
                                               instructions="Draw a box around **each** opacity.",
                                               created_by=organizer)
    Label.objects.create(project=project, key="pneumonia", title="Pneumonia", kind="choice", options=["no", "yes"])
    Label.objects.create(project=project, key="opacity", title="Opacity", kind="boxes",
                         definition="A box around each *opacity*.")
    second = make_user("rita")
    ChallengeRole.objects.create(challenge=challenge, user=second, role=Role.ANNOTATOR)
    project.add_reader(annotator)
    project.add_reader(second)
    project.assign()
    for connection in connections.all():
        connection.close()
    return project


def test_two_readers_draw_boxes_and_a_third_adjudicates(live_server, browser, project, annotator, organizer,  # noqa: F811
                                                        tmp_path):
    readers = [annotator, project.readers.get(user__username="rita").user]
    drawn = [((100, 100), (220, 260)), ((300, 400), (400, 500))]  # apart: no consensus on the box
    for reader, (start, end) in zip(readers, drawn):
        page = log_in(browser, live_server, reader)
        page.goto(f"{live_server.url}{project.get_absolute_url()}")
        page.click("#start-reading")
        page.wait_for_selector(".viewer-status:has-text('Image 1 of 1')")
        page.check("input[name=pneumonia][value=yes]")
        draw_box(page, start, end)
        page.wait_for_selector("#save-state[data-state=saved]")
        page.keyboard.press("2")  # lung window
        page.wait_for_selector(".viewer-status:has-text('window 1500/-600')")
        page.screenshot(path=str(tmp_path / f"read-{reader.username}.png"))
        page.reload()  # what was saved comes back exactly
        page.wait_for_selector(".viewer-status:has-text('Image 1 of 1')")
        assert page.is_checked("input[name=pneumonia][value=yes]")
        assert page.evaluate("window.micaViewer.marks.opacity.length") == 1
        page.click("#next-case")
        page.wait_for_url(f"{live_server.url}{project.get_absolute_url()}")
        assert "Your queue is done" in page.content()
        page.close()
    boxes = [Assignment.objects.get(project=project, reader__user=reader).answers.get(label__key="opacity").value
             for reader in readers]
    assert all(len(marks) == 1 and marks[0]["width"] > 20 for marks in boxes)
    assert boxes[0][0]["x"] != boxes[1][0]["x"]

    page = log_in(browser, live_server, organizer)
    page.goto(f"{live_server.url}/annotations/{project.pk}/adjudication/")
    page.click("td a")
    page.wait_for_selector("#decision-viewer .viewer-status:has-text('Image 1 of 1')")
    assert page.locator(".reader-panel").count() == 2
    page.screenshot(path=str(tmp_path / "adjudicate.png"), full_page=True)
    page.click("button[data-take='rita:opacity']")
    page.check("#decision input[name=pneumonia][value=yes]")
    page.click("#decide")
    page.wait_for_url(f"{live_server.url}/annotations/{project.pk}/adjudication/")
    assert "Every fully read case has a consensus or a decision" in page.content()
    decided = Adjudication.objects.get(project=project, label__key="opacity")
    assert decided.value == boxes[1] and decided.decided_by == organizer
    assert Adjudication.objects.get(project=project, label__key="pneumonia").value == "yes"
    connections.close_all()  # the ORM's connection opened beside Playwright's loop


def test_the_viewer_scrolls_slices_and_frames_and_shows_monochrome1_as_monochrome2(  # noqa: F811
        live_server, browser, challenge, organizer, annotator, tmp_path):
    import io

    import numpy as np
    import pydicom
    from PIL import Image

    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="series")
    project = AnnotationProject.objects.create(dataset=dataset, title="All", readers_per_case=1, created_by=organizer)
    Label.objects.create(project=project, key="pneumonia", title="Pneumonia", kind="choice", options=["no", "yes"])
    project.add_reader(annotator)
    project.assign()
    assignments = {}
    for assignment in Assignment.objects.filter(project=project).select_related("case__series"):
        instances = list(assignment.case.instances)
        header = pydicom.dcmread(instances[0].file.path, stop_before_pixels=True)
        kind = ("multiframe" if int(header.get("NumberOfFrames", 1)) > 1 else "ct" if len(instances) > 1
                else header.PhotometricInterpretation)
        assignments[kind] = assignment
    connections.close_all()
    page = log_in(browser, live_server, annotator)

    def open_case(kind, images):
        page.goto(f"{live_server.url}{assignments[kind].get_absolute_url()}")
        page.wait_for_selector(f".viewer-status:has-text('Image 1 of {images}')")
        page.wait_for_timeout(300)  # the next animation frame draws what was rendered

    open_case("multiframe", 4)
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(".viewer-status:has-text('Image 2 of 4')")
    page.mouse.move(*center_of(page))
    page.mouse.wheel(0, 120)
    page.wait_for_selector(".viewer-status:has-text('Image 3 of 4')")
    open_case("ct", 3)
    page.keyboard.press("4")  # mediastinum 350/50
    page.wait_for_selector(".viewer-status:has-text('window 350/50')")

    shown = {}
    for kind in ("MONOCHROME2", "MONOCHROME1"):
        open_case(kind, 1)
        picture = Image.open(io.BytesIO(page.locator(".viewer-canvas").screenshot())).convert("L")
        width, height = picture.size
        middle = np.asarray(picture.crop((int(width * .3), int(height * .3), int(width * .7), int(height * .7))), float)
        shown[kind] = middle
    # The phantom's lungs are dark on a bright body in both: MONOCHROME1 stores them inverted.
    correlation = np.corrcoef(shown["MONOCHROME1"].ravel(), shown["MONOCHROME2"].ravel())[0, 1]
    assert correlation > 0.8, correlation
    page.close()
    connections.close_all()


def center_of(page):
    box = page.locator(".viewer-canvas").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_a_reader_paints_and_outlines_a_mask_and_a_reload_shows_exactly_what_was_saved(  # noqa: F811
        live_server, browser, challenge, organizer, annotator, tmp_path):
    from mica.annotations.curation_calls import mask_from_runs

    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="series")
    keep = dataset.cases.filter(series__modality="DX").order_by("case_id").first()
    dataset.cases.exclude(pk=keep.pk).delete()
    project = AnnotationProject.objects.create(dataset=dataset, title="Lungs", readers_per_case=1, created_by=organizer)
    Label.objects.create(project=project, key="lung", title="Lung", kind="masks")
    project.add_reader(annotator)
    project.assign()
    assignment = Assignment.objects.get(project=project)
    connections.close_all()

    page = log_in(browser, live_server, annotator)
    page.goto(f"{live_server.url}{assignment.get_absolute_url()}")
    page.wait_for_selector(".viewer-status:has-text('tool: lung (brush)')")
    draw_box(page, (150, 150), (260, 170))  # a brush stroke
    page.wait_for_selector("#save-state[data-state=saved]")
    page.click("button[data-mask-mode=freehand]")
    page.wait_for_selector(".viewer-status:has-text('(freehand)')")
    canvas = page.locator(".viewer-canvas").first.bounding_box()
    outline = [(400, 300), (520, 310), (540, 420), (430, 450), (390, 380)]
    page.mouse.move(canvas["x"] + outline[0][0], canvas["y"] + outline[0][1])
    page.mouse.down()
    for x, y in outline[1:] + outline[:1]:
        page.mouse.move(canvas["x"] + x, canvas["y"] + y, steps=8)
    page.mouse.up()
    wait_until(page, "['unsaved', 'saved'].includes(document.querySelector('#save-state').dataset.state)")
    page.wait_for_selector("#save-state[data-state=saved]")
    page.wait_for_timeout(1200)  # the last autosave after the outline
    page.wait_for_selector("#save-state[data-state=saved]")
    page.screenshot(path=str(tmp_path / "mask.png"))
    saved = Assignment.objects.get(pk=assignment.pk).answers.get(label__key="lung").value
    connections.close_all()
    assert len(saved) == 1 and saved[0]["instance"] == keep.instances.first().uid
    mask = mask_from_runs(saved[0])
    assert mask.shape == (256, 200)
    # Two separate regions: the brush stroke and the filled outline (labelled by scipy).
    from scipy import ndimage

    regions, count = ndimage.label(mask)
    sizes = sorted(np.bincount(regions.ravel())[1:])
    assert count == 2 and sizes[0] > 50 and sizes[1] > 500, (count, sizes)

    page.reload()
    page.wait_for_selector(".viewer-status:has-text('tool: lung')")
    assert page.evaluate("window.micaViewer.marks.lung") == saved
    page.click("button[data-mask-mode=erase]")
    page.wait_for_selector(".viewer-status:has-text('(erase)')")
    page.screenshot(path=str(tmp_path / "mask-reloaded.png"))
    page.close()
    connections.close_all()


def test_two_readers_boxes_fuse_a_third_adjudicates_and_the_handed_over_truth_holds_the_fused_box(  # noqa: F811
        live_server, browser, project, annotator, organizer, challenge, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from mica.annotations.models import TruthHandover
    from mica.challenges.models import Challenge, TestSet

    Challenge.objects.filter(pk=challenge.pk).update(task_type="detection")
    case_id = project.dataset.cases.get().case_id
    TestSet.create_from_upload(Challenge.objects.get(pk=challenge.pk), "Opacity boxes", SimpleUploadedFile(
        "boxes.csv", f"patientId,x,y,width,height,Target\n{case_id},,,,,0\n".encode()), user=organizer,
        private_fraction=0)
    connections.close_all()
    readers = [annotator, project.readers.get(user__username="rita").user]
    drawn = [((100, 100), (220, 260), "yes"), ((112, 108), (230, 270), "no")]  # overlapping boxes, other answers
    for reader, (start, end, answer) in zip(readers, drawn):
        page = log_in(browser, live_server, reader)
        page.goto(f"{live_server.url}{project.get_absolute_url()}")
        page.click("#start-reading")
        page.wait_for_selector(".viewer-status:has-text('Image 1 of 1')")
        page.check(f"input[name=pneumonia][value={answer}]")
        draw_box(page, start, end)
        page.wait_for_selector("#save-state[data-state=saved]")
        page.click("#next-case")
        page.wait_for_url(f"{live_server.url}{project.get_absolute_url()}")
        page.close()
    boxes = [Assignment.objects.get(project=project, reader__user=reader).answers.get(label__key="opacity").value[0]
             for reader in readers]
    connections.close_all()

    page = log_in(browser, live_server, organizer)
    page.goto(f"{live_server.url}/annotations/{project.pk}/adjudication/")
    page.click("td a")  # the readers disagree on pneumonia only: the fused box is already the decision's
    page.wait_for_selector("#decision-viewer .viewer-status:has-text('Image 1 of 1')")
    page.check("#decision input[name=pneumonia][value=yes]")
    page.click("#decide")
    page.wait_for_url(f"{live_server.url}/annotations/{project.pk}/adjudication/")
    page.goto(f"{live_server.url}/annotations/{project.pk}/truth/")
    page.select_option("select[name=label]", label="Opacity")
    page.select_option("select[name=test_set]", label="Opacity boxes")
    page.fill("input[name=note]", "Consensus of two readers, adjudicated.")
    page.click("button[name=hand_over]")
    page.wait_for_selector(".messages:has-text('Opacity boxes: truth version 2 stored (1 cases)')")
    page.screenshot(path=str(tmp_path / "hand-over.png"), full_page=True)
    page.close()

    handover = TruthHandover.objects.get()
    with handover.version.file.open("rb") as handle:
        header, row = handle.read().decode().splitlines()
    fused = [(a + b) / 2 for a, b in zip(*[(box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"])
                                            for box in boxes])]
    patient, x, y, width, height, target = row.split(",")
    assert (header, patient, target) == ("patientId,x,y,width,height,Target", case_id, "1")
    # The decision passed through the adjudicator's viewer, which keeps marks to 0.1 px.
    assert [float(x), float(y), float(x) + float(width), float(y) + float(height)] == pytest.approx(fused, abs=0.1)
    assert handover.version.rescore is not None  # the test set's submissions are re-scored against it
    connections.close_all()
