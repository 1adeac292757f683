from django import forms

from mica.challenges.models import Challenge


class ImportForm(forms.Form):
    bundle = forms.FileField(help_text="A Mica bundle (.zip with challenge.yaml) or a Codabench bundle "
                                       "(.zip with competition.yaml).")
    slug = forms.SlugField(required=False, help_text="Empty: the slug the bundle names (Codabench: from its title).")
    task_type = forms.ChoiceField(choices=[("", "—"), *Challenge.TaskType.choices], required=False,
                                  help_text="Codabench bundles only: they do not say what task they are.")
