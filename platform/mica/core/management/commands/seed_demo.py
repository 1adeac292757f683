"""Seeds a demo challenge: synthetic chest radiographs run through the real anonymization
pipeline, a hidden test set split into a public and a private part, a phase, two teams with
submissions scored on both parts, a baseline, and the accounts to log in with."""

import csv
import io
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

import anonymizer.synthetic
from mica.challenges.models import Challenge, Phase, Team, TestSet
from mica.datasets.models import Dataset, Upload
from mica.datasets.tasks import ingest_upload
from mica.evaluations.tasks import run_evaluation
from mica.submissions.models import Submission

SLUG = "demo-pneumonia"
PASSWORD = "mica-demo-password"
ACCOUNTS = [
    ("organizer", "organizes the demo challenge (and is staff: /admin/)"),
    ("alice", "participant, team Alveoli"),
    ("bob", "participant, team Bronchi"),
    ("carol", "participant without a team yet: register, create a team, submit"),
]
N_PATIENTS = 40

DESCRIPTION = """\
A demonstration of Mica with **synthetic** chest radiographs (no real patient is involved).

Predict, for each image of the hidden test set, the probability that it shows pneumonia.
Submissions are CSV files with the header `case_id,score`; download the list of case ids from
the phase table. Submissions are ranked by the area under the ROC curve; a case left out of
your file counts as the worst possible prediction.
"""


class Command(BaseCommand):
    help = "Creates the demo challenge (once) and prints the demo accounts."

    def handle(self, *args, **options):
        if not Challenge.objects.filter(slug=SLUG).exists():
            self.stdout.write("Seeding the demo challenge (synthetic DICOM, anonymized, scored)...")
            self.seed()
        self.stdout.write(self.style.SUCCESS("Demo accounts (password for all: %s):" % PASSWORD))
        for username, what in ACCOUNTS:
            self.stdout.write(f"  {username:10} {what}")
        self.stdout.write(f"Challenge: http://127.0.0.1:8000/challenges/{SLUG}/")

    def seed(self):
        users = {name: self.user(name) for name, _ in ACCOUNTS}
        users["organizer"].is_staff = users["organizer"].is_superuser = True
        users["organizer"].save()

        with transaction.atomic():
            challenge = Challenge.objects.create(
                slug=SLUG, title="Pneumonia on chest radiographs (demo)", description=DESCRIPTION,
                terms="Use the data for this challenge only, and never try to re-identify anyone.",
                task_type="classification", state=Challenge.State.PUBLISHED, created_by=users["organizer"],
            )
            challenge.add_organizer(users["organizer"])
            dataset = Dataset.objects.create(
                challenge=challenge, name="Chest radiographs", visible_to_participants=True,
                created_by=users["organizer"],
            )

        upload = Upload.receive(dataset=dataset, user=users["organizer"], uploaded_file=self.synthetic_studies())
        ingest_upload(upload.pk)  # run here so that the test set can name the anonymized images
        upload.refresh_from_db()
        if upload.status != Upload.Status.PROCESSED:
            raise RuntimeError(f"the demo upload was not processed: {upload.status_reason}")

        case_ids = sorted(dataset.instances.values_list("uid", flat=True))
        rng = np.random.default_rng(2026)
        labels = (rng.random(len(case_ids)) < 0.35).astype(int)
        labels[:2] = [0, 1]
        test_set = TestSet.create_from_upload(
            challenge, "Hidden test set", _csv("truth.csv", ["case_id", "pneumonia"], zip(case_ids, labels)),
            user=users["organizer"], private_fraction=0.5, seed=2026,
        )
        now = timezone.now()
        phase = Phase.objects.create(
            challenge=challenge, name="Final", test_set=test_set, starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=60), primary_metric="auc", secondary_metrics=["sensitivity", "specificity"],
            daily_limit=10, selection=Phase.Selection.SELECTED,
        )

        for username, team_name, signal in (("alice", "Alveoli", 1.6), ("bob", "Bronchi", 0.6)):
            challenge.register(users[username])
            Team.create_for(challenge, users[username], team_name)
            noise = rng.normal(0, 1, len(labels))
            scores = 1 / (1 + np.exp(-(signal * (2 * labels - 1) + noise)))
            self.score(Submission.create(
                phase=phase, user=users[username],
                uploaded_file=_csv(f"{username}.csv", ["case_id", "score"], zip(case_ids, np.round(scores, 4))),
            ))
        baseline = 1 / (1 + np.exp(-(0.3 * (2 * labels - 1) + rng.normal(0, 1, len(labels)))))
        self.score(Submission.create(
            phase=phase, user=users["organizer"], baseline=True, comment="Logistic regression baseline",
            uploaded_file=_csv("baseline.csv", ["case_id", "score"], zip(case_ids, np.round(baseline, 4))),
        ))
        challenge.register(users["carol"])

    @staticmethod
    def score(submission):
        """The worker's step, run here so that the demo starts with a leaderboard."""
        for evaluation in submission.evaluations.all():
            run_evaluation(evaluation.pk)

    def user(self, username):
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
        if created:
            user.set_password(PASSWORD)
            user.save()
        return user

    def synthetic_studies(self):
        """A .zip of synthetic radiographs with made-up identifying data for the anonymizer to remove."""
        with tempfile.TemporaryDirectory() as folder:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for index in range(N_PATIENTS):
                    path = Path(folder) / f"patient-{index:03d}.dcm"
                    anonymizer.synthetic.write_radiograph(
                        path, patient_name=f"Demo^Patient{index:03d}", patient_id=f"DEMO{index:05d}", seed=index,
                        rows=512, columns=512,
                    )
                    archive.write(path, f"archive/{path.name}")
            return SimpleUploadedFile("demo-studies.zip", buffer.getvalue(), content_type="application/zip")


def _csv(name, header, rows):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, text.getvalue().encode(), content_type="text/csv")
