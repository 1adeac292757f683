from django import forms

from .models import Dataset


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name", "visible_to_participants"]


class UploadForm(forms.Form):
    archive = forms.FileField(
        label="Studies (.zip)",
        help_text="DICOM files (any names, nested folders), PNG or JPEG images. Everything is anonymized "
        "before it is stored; the original is deleted once processed.",
    )
