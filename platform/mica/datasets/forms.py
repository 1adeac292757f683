from django import forms

from .models import Dataset


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name", "case_level", "visible_to_participants", "max_files_per_upload", "max_decoded_pixels"]


class DatasetEditForm(forms.ModelForm):
    """The case level is fixed once the dataset has cases: labels and projects refer to them."""

    class Meta:
        model = Dataset
        fields = ["name", "visible_to_participants", "max_files_per_upload", "max_decoded_pixels"]


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


class PullForm(forms.Form):
    source = forms.ChoiceField(label="DICOMweb server", choices=())
    study_uids = forms.CharField(
        label="Study Instance UIDs", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line. Or leave empty and search by the fields below.",
    )
    PatientID = forms.CharField(label="Patient ID", required=False)
    AccessionNumber = forms.CharField(label="Accession number", required=False)
    StudyDate = forms.CharField(label="Study date", required=False, help_text="YYYYMMDD or a range YYYYMMDD-YYYYMMDD.")

    def __init__(self, *args, sources, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [(source, source) for source in sources]
