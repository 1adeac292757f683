from django import forms

from mica.challenges.models import TestSet
from mica.datasets.models import Dataset

from .models import DataRelease


class ReleaseForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=DataRelease.Kind.choices)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    test_set = forms.ModelChoiceField(queryset=TestSet.objects.none(), required=False,
                                      help_text="Test releases: the archive holds this test set's images.")
    labels = forms.FileField(required=False, help_text="Training releases: a CSV whose first column is case_id.")
    image_format = forms.ChoiceField(choices=DataRelease.ImageFormat.choices, initial=DataRelease.ImageFormat.DICOM,
                                     help_text="PNG converts each DICOM frame (windowed as the file says); "
                                               "DICOM wraps PNG images as Secondary Capture.")

    def __init__(self, *args, challenge, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = challenge.datasets.all()
        self.fields["test_set"].queryset = challenge.test_sets.all()
