"""Annotation projects: expert readers label the cases of a dataset, each in their own queue.

An organizer writes the label definitions, picks readers among the challenge's annotators and
assigns the cases (random, balanced, never one case twice to a reader except the chosen
re-read share). A reader sees only their own queue and answers. Cases on which the readers do
not agree go to an adjudicator, who sees every reader's marks side by side and decides.
"""

import math
import random
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from mica.challenges.models import Role
from mica.datasets.models import Case

MAX_TEXT_LENGTH = 5000
MAX_MARKS = 500


def _new_seed():
    return random.SystemRandom().randrange(2**31)


class AnnotationProject(models.Model):
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="annotation_projects")
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown: what counts as positive and how to draw it.")
    readers_per_case = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    reread_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The share of cases each reader reads a second time, for intra-reader agreement.",
    )
    seed = models.BigIntegerField(default=_new_seed, help_text="Makes the random assignment reproducible.")
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("annotations:project", args=[self.pk])

    @property
    def challenge(self):
        return self.dataset.challenge

    def is_organizer(self, user):
        return self.challenge.is_organizer(user)

    def reader_of(self, user):
        if not user.is_authenticated:
            return None
        return self.readers.filter(user=user).first()

    def can_adjudicate(self, user):
        reader = self.reader_of(user)
        return self.is_organizer(user) or bool(reader and reader.is_adjudicator)

    def add_reader(self, user, weight=1.0, is_adjudicator=False):
        if Role.ANNOTATOR not in self.challenge.role_of(user):
            raise ValidationError(f"{user.username} is not an annotator of this challenge.")
        reader, _ = Reader.objects.update_or_create(
            project=self, user=user, defaults={"weight": weight, "is_adjudicator": is_adjudicator}
        )
        return reader

    def fully_read_count(self):
        """How many cases every reader has read (first reads submitted), without reading any answer."""
        return (self.assignments.filter(is_reread=False, submitted_at__isnull=False).values("case")
                .annotate(n=models.Count("pk")).filter(n__gte=self.readers_per_case).count())

    def assign(self):
        """Deals the cases to the reading pool, once (see curation_calls.assign_cases)."""
        from .curation_calls import assign_cases

        with transaction.atomic():
            project = AnnotationProject.objects.select_for_update().get(pk=self.pk)
            if project.assigned_at:
                raise ValidationError("The cases of this project are already assigned.")
            readers = list(self.readers.filter(is_adjudicator=False).order_by("pk"))
            if len(readers) < self.readers_per_case:
                raise ValidationError(
                    f"Each case needs {self.readers_per_case} readers but the pool has {len(readers)}."
                )
            cases = list(self.dataset.cases.order_by("case_id"))
            if not cases:
                raise ValidationError("The dataset has no cases yet: upload studies first.")
            deals = assign_cases(
                [case.pk for case in cases], {reader.pk: reader.weight for reader in readers},
                readers_per_case=self.readers_per_case, reread_share=self.reread_share, seed=self.seed,
            )
            Assignment.objects.bulk_create(
                Assignment(project=self, case_id=deal.case, reader_id=deal.reader, position=deal.position,
                           is_reread=deal.is_reread)
                for deal in deals
            )
            self.assigned_at = timezone.now()
            AnnotationProject.objects.filter(pk=self.pk).update(assigned_at=self.assigned_at)
        return len(deals)


class Reader(models.Model):
    """An annotator in the project's pool; an adjudicator decides instead of reading."""

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="readers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)],
                               help_text="Relative share of cases (1 for everyone: balanced).")
    is_adjudicator = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_reader_per_user_and_project")]
        ordering = ["user__username"]

    def __str__(self):
        return self.user.username

    def queue(self):
        return self.assignments.select_related("case").order_by("position")

    def next_assignment(self):
        return self.queue().filter(submitted_at__isnull=True).first()


class LabelKind(models.TextChoices):
    CHOICE = "choice", "One choice"
    MULTIPLE_CHOICE = "multiple_choice", "Several choices"
    NUMBER = "number", "Number"
    TEXT = "text", "Free text (kept private)"
    BOXES = "boxes", "Bounding boxes"
    POINTS = "points", "Points"
    MASKS = "masks", "2-D masks (per slice)"


CASE_LEVEL_KINDS = {LabelKind.CHOICE, LabelKind.MULTIPLE_CHOICE, LabelKind.NUMBER, LabelKind.TEXT}
MARK_KINDS = {LabelKind.BOXES, LabelKind.POINTS, LabelKind.MASKS}


class Label(models.Model):
    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="labels")
    key = models.SlugField(max_length=50, help_text="The column name in exports, e.g. pneumonia.")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=LabelKind.choices)
    options = models.JSONField(default=list, blank=True, help_text="The choices, for choice kinds.")
    minimum = models.FloatField(null=True, blank=True)
    maximum = models.FloatField(null=True, blank=True)
    definition = models.TextField(blank=True, help_text="Markdown with example images.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="label_keys_unique_per_project")]
        ordering = ["position", "pk"]

    def __str__(self):
        return self.title

    def clean(self):
        if self.kind in (LabelKind.CHOICE, LabelKind.MULTIPLE_CHOICE):
            if (not isinstance(self.options, list) or len(self.options) < 2
                    or not all(isinstance(option, str) and option for option in self.options)
                    or len(set(self.options)) != len(self.options)):
                raise ValidationError({"options": "Give at least two different choices."})
        elif self.options:
            raise ValidationError({"options": "Only choice labels have options."})
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValidationError({"maximum": "The maximum is below the minimum."})

    def validate(self, value, case_instance_uids):
        """The value as stored, or ValueError whose arguments name each label and entry that is wrong."""
        where = f"label {self.key!r}"
        kind = self.kind
        if kind == LabelKind.CHOICE:
            if value not in self.options:
                raise ValueError(f"{where}: choose one of {', '.join(self.options)}")
            return value
        if kind == LabelKind.MULTIPLE_CHOICE:
            if not isinstance(value, list) or any(item not in self.options for item in value):
                raise ValueError(f"{where}: give a list of choices among {', '.join(self.options)}")
            return sorted(set(value), key=self.options.index)
        if kind == LabelKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{where}: give a finite number")
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                raise ValueError(f"{where}: {value} is outside [{self.minimum}, {self.maximum}]")
            return value
        if kind == LabelKind.TEXT:
            if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
                raise ValueError(f"{where}: give text of at most {MAX_TEXT_LENGTH} characters")
            return value
        if not isinstance(value, list) or len(value) > MAX_MARKS:
            raise ValueError(f"{where}: give a list of at most {MAX_MARKS} marks")
        marks, problems = [], []
        for index, mark in enumerate(value):
            try:
                marks.append(self._validate_mark(index, mark, case_instance_uids))
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError(*problems)
        return marks

    def _validate_mark(self, index, mark, case_instance_uids):
        where = f"label {self.key!r}, mark {index}"
        fields = {LabelKind.BOXES: ("x", "y", "width", "height"), LabelKind.POINTS: ("x", "y"),
                  LabelKind.MASKS: ("rows", "columns")}[self.kind]
        if not isinstance(mark, dict):
            raise ValueError(f"{where}: give an object")
        if mark.get("instance") not in case_instance_uids:
            raise ValueError(f"{where}: 'instance' must be the SOP Instance UID of an image of this case")
        frame = mark.get("frame", 1)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            raise ValueError(f"{where}: 'frame' must be a whole number from 1")
        clean = {"instance": mark["instance"], "frame": frame}
        for field in fields:
            number = mark.get(field)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise ValueError(f"{where}: {field!r} must be a finite number")
            clean[field] = number
        if self.kind != LabelKind.MASKS and (clean["x"] < 0 or clean["y"] < 0):
            raise ValueError(f"{where}: x and y are image pixels, from 0")
        if self.kind == LabelKind.BOXES and (clean["width"] <= 0 or clean["height"] <= 0):
            raise ValueError(f"{where}: width and height must be positive")
        if self.kind == LabelKind.MASKS:
            runs = mark.get("rle")
            total = int(clean["rows"]) * int(clean["columns"])
            if (not isinstance(runs, list) or not all(isinstance(run, int) and run >= 0 for run in runs)
                    or sum(runs) != total):
                raise ValueError(f"{where}: 'rle' must be run lengths (background first) adding up to rows × columns")
            clean["rle"] = runs
        if "proposal" in mark:  # model-assisted reading: which proposal this mark came from
            clean["proposal"] = str(mark["proposal"])[:100]
        return clean


class Assignment(models.Model):
    """One case in one reader's queue (a re-read is a second assignment of the same case)."""

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(Reader, on_delete=models.CASCADE, related_name="assignments")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    is_reread = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reader", "case", "is_reread"], name="a_case_once_per_reader_and_read"),
        ]
        ordering = ["reader", "position"]

    def get_absolute_url(self):
        return reverse("annotations:read", args=[self.pk])

    def answers_by_key(self):
        return {answer.label.key: answer.value for answer in self.answers.select_related("label")}

    @transaction.atomic
    def save_answers(self, answers, submit=False):
        """Replaces every answer with `answers` ({label key: value}); the same call twice stores the
        same state. Raises ValueError listing each problem, and then stores nothing."""
        if not isinstance(answers, dict):
            raise ValueError(["answers: give an object of label key → value"])
        labels = {label.key: label for label in self.project.labels.all()}
        uids = set(self.case.instances.values_list("uid", flat=True))
        problems, clean = [], {}
        for key, value in answers.items():
            label = labels.get(key)
            if label is None:
                problems.append(f"label {str(key)[:50]!r}: not a label of this project")
                continue
            if value is None:
                continue
            try:
                clean[key] = label.validate(value, uids)
            except ValueError as error:
                problems.extend(error.args)
        if problems:
            raise ValueError(problems)
        self.answers.exclude(label__key__in=clean).delete()
        for key, value in clean.items():
            Answer.objects.update_or_create(assignment=self, label=labels[key], defaults={"value": value})
        self.submitted_at = self.submitted_at or (timezone.now() if submit else None)
        self.save(update_fields=["submitted_at", "updated_at"])


class Answer(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="answers")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "label"], name="one_answer_per_label")]


class Adjudication(models.Model):
    """The adjudicator's decision on one label of a case without consensus."""

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="adjudications")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "case", "label"], name="one_decision_per_label")]


def readings(project):
    """{case: {reader: {label key: value}}} of the submitted first reads of the project."""
    by_case = {}
    submitted = (Assignment.objects.filter(project=project, is_reread=False, submitted_at__isnull=False)
                 .select_related("case", "reader__user").prefetch_related("answers__label"))
    for assignment in submitted:
        answers = {answer.label.key: answer.value for answer in assignment.answers.all()}
        by_case.setdefault(assignment.case, {})[assignment.reader] = answers
    return by_case


@dataclass(frozen=True)
class Frame:
    """One frame of one image of a case, as masks and boxes refer to it."""

    instance: str
    frame: int
    rows: int
    columns: int
    spacing: tuple  # (column spacing, row spacing, slice thickness) in mm, 1 where the file says nothing


def case_frames(case):
    """The case's frames in reading order (the DICOM headers only)."""
    import pydicom

    frames = []
    for instance in case.instances.filter(kind="dicom"):
        with instance.file.open("rb") as handle:
            header = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=[
                "Rows", "Columns", "NumberOfFrames", "PixelSpacing", "SliceThickness"])
        pixel = [float(value) for value in header.get("PixelSpacing") or (1, 1)]
        spacing = (pixel[1], pixel[0], float(header.get("SliceThickness") or 1))
        for number in range(1, int(header.get("NumberOfFrames") or 1) + 1):
            frames.append(Frame(instance.uid, number, int(header.Rows), int(header.Columns), spacing))
    return frames


def image_sizes(case):
    """{SOP Instance UID: (columns, rows)} of the case's images, for fusing boxes and masks."""
    return {frame.instance: (frame.columns, frame.rows) for frame in case_frames(case)}


def consensus_table(project):
    """One row per fully read case: each label's consensus (or adjudication), and what is missing."""
    from .curation_calls import label_consensus

    labels = [label for label in project.labels.all() if label.kind != LabelKind.TEXT]
    decided = {(item.case_id, item.label_id): item.value for item in project.adjudications.all()}
    rows = []
    for case, by_reader in sorted(readings(project).items(), key=lambda item: item[0].case_id):
        if len(by_reader) < project.readers_per_case:
            continue
        values, undecided = {}, []
        for label in labels:
            if (case.pk, label.pk) in decided:
                values[label.key] = decided[(case.pk, label.pk)]
                continue
            given = [answers.get(label.key) for answers in by_reader.values()]
            if all(value is None for value in given):  # nobody answered it: nothing to decide
                values[label.key] = None
                continue
            sizes = image_sizes(case) if label.kind in (LabelKind.BOXES, LabelKind.MASKS) else None
            consensus = label_consensus(label.kind, given, sizes)
            if consensus is None:
                undecided.append(label.key)
            values[label.key] = consensus
        rows.append({"case": case, "by_reader": by_reader, "values": values, "undecided": undecided})
    return rows


class SplitPart(models.TextChoices):
    TRAIN = "train", "Training (participants download it with labels)"
    TEST = "test", "Test (hidden truth: public and private leaderboards)"


class CaseSplit(models.Model):
    """The project's cases split into training and test, once, by patient (no patient in both),
    stratified by a label's consensus, seeded, and recorded case by case. The test cases become a
    test set on hand-over, where they are split again into public and private parts, by patient
    too, with the same seed (TestSet's own, recorded there)."""

    project = models.OneToOneField(AnnotationProject, on_delete=models.CASCADE, related_name="split")
    test_fraction = models.FloatField(validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
                                      help_text="The share of cases in the test set.")
    private_fraction = models.FloatField(validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
                                         help_text="The share of the test cases on the private leaderboard.")
    stratified_by = models.ForeignKey(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    seed = models.PositiveIntegerField()
    parts = models.JSONField(help_text="{case id: train or test}")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    @classmethod
    def make(cls, project, *, test_fraction, private_fraction, user, stratified_by=None, seed=None):
        """Splits the dataset's cases (evaluator.split_cases, grouped by patient pseudonym; strata:
        the label's consensus, "undecided" where there is none yet). ValidationError says why not."""
        import evaluator

        if hasattr(project, "split"):
            raise ValidationError("This project's cases are already split; the split is kept as recorded.")
        cases = dict(project.dataset.cases.values_list("case_id", "patient_pseudonym"))
        strata = None
        if stratified_by is not None:
            if stratified_by.project_id != project.pk or stratified_by.kind not in CASE_LEVEL_KINDS - {LabelKind.TEXT}:
                raise ValidationError("Stratify by a choice or number label of this project.")
            from .truth import consensus_of

            consensus = consensus_of(project, stratified_by)
            strata = {case_id: "undecided" if consensus.get(case_id) is None else repr(consensus[case_id])
                      for case_id in cases}
        seed = random.SystemRandom().randrange(2**31) if seed is None else seed
        try:
            parts = evaluator.split_cases(list(cases), strata=strata, groups=cases, private_fraction=test_fraction,
                                          seed=seed)
        except ValueError as error:
            raise ValidationError(f"The cases cannot be split: {error}.") from error
        return cls.objects.create(
            project=project, test_fraction=test_fraction, private_fraction=private_fraction,
            stratified_by=stratified_by, seed=seed, created_by=user,
            parts={case_id: SplitPart.TEST if part == "private" else SplitPart.TRAIN for case_id, part in parts.items()},
        )

    def case_ids(self, part):
        return sorted(case_id for case_id, where in self.parts.items() if where == part)

    def counts(self):
        return {part: len(self.case_ids(part)) for part in SplitPart.values}

    def training_files(self, label, *, image_format="dicom", positive=""):
        """What participants download for training (see downloads.training_files)."""
        from .downloads import training_files

        return training_files(self, label, image_format=image_format, positive=positive)

    def handed_over_training_files(self, *, image_format="dicom"):
        """The training files labelled as the latest hand-over labelled the test set (same label,
        same positive option); ValueError before anything was handed over."""
        handover = self.project.handovers.select_related("label").first()
        if handover is None:
            raise ValueError("Nothing has been handed over yet: the training labels follow the test set's.")
        return self.training_files(handover.label, image_format=image_format, positive=handover.positive)


class TruthHandover(models.Model):
    """A project's consensus on one label, handed to a challenge's test set as a truth version."""

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="handovers")
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+")
    positive = models.CharField(max_length=200, blank=True, help_text="The option written as 1 (one-choice labels).")
    version = models.OneToOneField("challenges.TruthVersion", on_delete=models.CASCADE, related_name="handover")
    n_cases = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    @classmethod
    def hand_over(cls, project, label, *, user, test_set=None, name="", positive="", note=""):
        """Writes the consensus of `label` in the evaluator's format and stores it: as the next truth
        version of `test_set` (TestSet.correct_truth: every accepted submission is re-scored), or,
        without one, as a new test set named `name` made of the split's test cases (split into
        public and private by patient). ValidationError names what is missing; nothing is stored then."""
        from mica.challenges.models import TestSet

        from .truth import check_label_fits, truth_file

        if label.project_id != project.pk:
            raise ValidationError("The label is not one of this project's.")
        check_label_fits(project, label, positive)
        if test_set is not None:
            if test_set.challenge_id != project.challenge.pk:
                raise ValidationError("The test set belongs to another challenge.")
            case_ids = test_set.case_ids()
            foreign = sorted(set(case_ids) - set(project.dataset.cases.values_list("case_id", flat=True)))
            if foreign:
                raise ValidationError(f"{len(foreign)} case(s) of the test set are not in this project's dataset "
                                      f"(e.g. {foreign[0]!r}).")
            upload, written = truth_file(project, label, case_ids, positive=positive)
            with transaction.atomic():
                version = test_set.correct_truth(upload, user=user, note=note or f"Consensus of {project.title}.")
                return cls.objects.create(project=project, label=label, positive=positive, version=version,
                                          n_cases=len(written), created_by=user)
        split = getattr(project, "split", None)
        if split is None:
            raise ValidationError("Split the cases into training and test first: the test set is the test part.")
        if not name.strip():
            raise ValidationError("Name the new test set.")
        case_ids = split.case_ids(SplitPart.TEST)
        upload, written = truth_file(project, label, case_ids, positive=positive)
        patients = dict(project.dataset.cases.filter(case_id__in=written).values_list("case_id", "patient_pseudonym"))
        with transaction.atomic():
            try:
                test_set = TestSet.create_from_upload(
                    project.challenge, name.strip(), upload, user=user, private_fraction=split.private_fraction,
                    seed=split.seed, patients=patients)
            except ValueError as error:  # evaluator.split_cases: e.g. a single patient in the test part
                raise ValidationError(f"The test cases cannot be split into public and private: {error}.") from error
            return cls.objects.create(project=project, label=label, positive=positive, version=test_set.latest_version,
                                      n_cases=len(written), created_by=user)


class ProposalSet(models.Model):
    """A model's proposals for one mark label (a baseline's boxes or masks, in the evaluator's
    prediction formats), which readers accept, fix or reject: each proposed mark carries a
    `proposal` id that the viewer keeps while a reader moves or reshapes it (see proposals.py)."""

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="proposal_sets")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200, help_text="Which model, e.g. the baseline's name and version.")
    min_confidence = models.FloatField(default=0.5, help_text="Boxes below this confidence are not proposed.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "label"], name="one_proposal_set_per_label")]


class Proposal(models.Model):
    proposal_set = models.ForeignKey(ProposalSet, on_delete=models.CASCADE, related_name="proposals")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    marks = models.JSONField(help_text="The label's marks, each with its proposal id.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["proposal_set", "case"], name="one_proposal_per_case")]
