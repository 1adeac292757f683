from django import forms

from .models import Dataset


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name", "case_level", "visible_to_participants"]


class UploadForm(forms.Form):
    archive = forms.FileField(
        label="Studies (.zip)",
        help_text="DICOM files (any names, nested folders), PNG or JPEG images. Everything is anonymized "
        "before it is stored; the original is deleted once processed.",
    )


class LabelImportForm(forms.Form):
    labels = forms.FileField(
        label="Labels (.csv)",
        help_text="First column: file_in_upload, original_study_uid, original_series_uid or "
        "original_sop_instance_uid; then one column per label. Rows are mapped onto case ids.",
    )
    skip_unmatched = forms.BooleanField(
        required=False, label="Download the matched rows even if some rows match no case"
    )
