"""Speed of the readers' viewer in a real browser: time to first image and scroll rate.

    python benchmarks/viewer.py            # a 3000×4000 mammogram and a 300-slice 512² CT
    python benchmarks/viewer.py --quick    # a 1500×2000 image and a 60-slice CT

Builds a throw-away site (SQLite and files under a temporary folder), ingests synthetic studies
through the anonymizer, serves them with Django's development server and opens the reading page
in Debian's Chromium (Playwright; software WebGL, so a machine with a GPU is faster). Needs the
viewer bundle (`make viewer`). Prints, for each case: the time from navigation to the first
image on screen (page, metadata, pixel data, decoding, drawing), then the slices per second when
scrolling through every slice a first time (each fetched from Mica's DICOMweb, one request per
frame, by the development server) and a second time (from the viewer's cache).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "benchmark-password-42"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_site(folder, mammogram_size, ct_slices):
    """Migrates a fresh database, ingests the studies and assigns both cases to one reader."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    import anonymizer.synthetic
    from mica.annotations.models import AnnotationProject, Assignment, Label
    from mica.challenges.models import Challenge, ChallengeRole, Role
    from mica.datasets.models import Dataset, Upload
    from mica.datasets.tasks import ingest_upload

    call_command("migrate", verbosity=0)
    organizer = User.objects.create_user("organizer", password=PASSWORD)
    reader = User.objects.create_user("reader", password=PASSWORD)
    challenge = Challenge.objects.create(slug="bench", title="Benchmark", task_type="classification",
                                         primary_metric="auc", created_by=organizer)
    ChallengeRole.objects.create(challenge=challenge, user=organizer, role=Role.ORGANIZER)
    ChallengeRole.objects.create(challenge=challenge, user=reader, role=Role.ANNOTATOR)
    dataset = Dataset.objects.create(challenge=challenge, name="Benchmark", created_by=organizer, case_level="series")

    studies = folder / "studies"
    studies.mkdir()
    rows, columns = mammogram_size
    anonymizer.synthetic.write_radiograph(studies / "mammogram.dcm", modality="MG", rows=rows, columns=columns,
                                          patient_id="BENCH-1")
    (studies / "ct").mkdir()
    anonymizer.synthetic.write_ct_series(studies / "ct", n_slices=ct_slices, patient_id="BENCH-2")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for path in studies.rglob("*.dcm"):
            handle.write(path, path.relative_to(studies).as_posix())
    upload = Upload.receive(dataset=dataset, user=organizer,
                            uploaded_file=SimpleUploadedFile("studies.zip", archive.getvalue()))
    ingest_upload(upload.pk)
    project = AnnotationProject.objects.create(dataset=dataset, title="Benchmark", readers_per_case=1,
                                               created_by=organizer)
    Label.objects.create(project=project, key="finding", title="Finding", kind="boxes")
    project.add_reader(reader)
    project.assign()
    return {("mammogram" if a.case.series.modality == "MG" else "ct"): (a.pk, a.case.instances.count())
            for a in Assignment.objects.select_related("case__series")}


SCROLL = """async (start) => {
  const viewer = window.micaViewer;
  const element = viewer.canvas;
  const started = performance.now();
  for (let index = start; index < viewer.slices.length; index++) {
    const rendered = new Promise((resolve) => element.addEventListener("CORNERSTONE_IMAGE_RENDERED", resolve, { once: true }));
    viewer.show(index);
    await rendered;
  }
  return (viewer.slices.length - start) / ((performance.now() - started) / 1000);
}"""


def measure(url, cases):
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--enable-unsafe-swiftshader"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", "reader")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{url}/")
        for name, (assignment, n_images) in cases.items():
            started = time.perf_counter()
            page.goto(f"{url}/annotations/read/{assignment}/")
            page.wait_for_selector(f".viewer-status:has-text('Image 1 of {n_images}')", timeout=300_000)
            first_image = time.perf_counter() - started
            row = {"images": n_images, "first image (s)": first_image}
            if n_images > 1:
                row["scroll, fetching (slices/s)"] = page.evaluate(SCROLL, 1)
                row["scroll, cached (slices/s)"] = page.evaluate(SCROLL, 0)
            results[name] = row
        browser.close()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller images and fewer slices")
    arguments = parser.parse_args()
    if not (ROOT / "platform/mica/annotations/static/annotations/viewer/viewer.js").exists():
        sys.exit("The viewer is not bundled: run `make viewer` first.")
    mammogram, slices = ((2000, 1500), 60) if arguments.quick else ((4000, 3000), 300)
    folder = Path(tempfile.mkdtemp(prefix="mica-viewer-bench-"))
    environment = {**os.environ, "DEBUG": "1", "MICA_VAR_DIR": str(folder / "var"), "SECRET_KEY": "benchmark",
                   "DATABASE_URL": f"sqlite:///{folder / 'mica.sqlite3'}", "CELERY_BROKER_URL": "memory://",
                   "DJANGO_SETTINGS_MODULE": "config.settings",
                   "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    os.environ.update(environment)
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    server = None
    try:
        started = time.perf_counter()
        cases = build_site(folder, mammogram, slices)
        print(f"site built in {time.perf_counter() - started:.1f} s: mammogram {mammogram[1]}×{mammogram[0]}, "
              f"CT {slices} slices of 512×512")
        port = free_port()
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                                  cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/accounts/login/")
                break
            except OSError:
                time.sleep(0.2)
        for name, row in measure(url, cases).items():
            figures = " · ".join(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
                                 for key, value in row.items())
            print(f"{name:10s} {figures}")
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
