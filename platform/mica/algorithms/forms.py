from django import forms

from mica.challenges.models import TruthVersion


class RerunForm(forms.Form):
    phase = forms.ModelChoiceField(queryset=None, help_text="Its test set, limits and metrics are used.")
    truth_version = forms.ModelChoiceField(
        queryset=None, required=False, help_text="Empty: the test set's latest truth. A corrected truth is a version too.")

    def __init__(self, *args, phases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["phase"].queryset = phases
        self.fields["phase"].label_from_instance = lambda phase: f"{phase.challenge.title}: {phase.name} ({phase.test_set.name})"
        self.fields["truth_version"].queryset = TruthVersion.objects.filter(
            test_set__phases__in=phases).distinct().select_related("test_set__challenge")
        self.fields["truth_version"].label_from_instance = (
            lambda version: f"{version.test_set.challenge.title}: {version.test_set.name} v{version.number}"
            + (f" ({version.note})" if version.note else ""))

    def clean(self):
        data = super().clean()
        phase, version = data.get("phase"), data.get("truth_version")
        if phase and version and version.test_set_id != phase.test_set_id:
            self.add_error("truth_version", "This truth belongs to another test set than the phase's.")
        elif phase and not version:
            data["truth_version"] = phase.test_set.latest_version
        return data
