from django import forms
from django.contrib.auth import get_user_model

from .models import Site


class SiteForm(forms.ModelForm):
    admin = forms.CharField(label="Site admin", help_text="The username of the person who runs the site's worker.")
    metrics = forms.CharField(help_text="Comma-separated metrics the site reports; the first ranks.")

    class Meta:
        model = Site
        fields = ["name", "admin", "metrics", "share_per_case"]
        labels = {"share_per_case": "Per-case values may leave the site"}

    def __init__(self, *args, phase, **kwargs):
        self.phase = phase
        super().__init__(*args, **kwargs)
        self.instance.phase = phase
        self.initial.setdefault("metrics", ", ".join(phase.metrics))

    def clean_admin(self):
        user = get_user_model().objects.filter(username=self.cleaned_data["admin"].strip(), is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active user has this username.")
        return user

    def clean_metrics(self):
        """The names; the site's model checks them against the task."""
        return [name.strip() for name in self.cleaned_data["metrics"].split(",") if name.strip()]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Site.objects.filter(phase=self.phase, name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("This phase has a site of this name already.")
        return name


class CompareForm(forms.Form):
    algorithm = forms.ModelChoiceField(queryset=None)
    other_algorithm = forms.ModelChoiceField(queryset=None, label="Against")
    metric = forms.ChoiceField()

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        algorithms = site.phase.challenge.algorithms.select_related("team")
        self.fields["algorithm"].queryset = self.fields["other_algorithm"].queryset = algorithms
        self.fields["metric"].choices = [(name, name) for name in site.metrics]
