from django import forms
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.contrib.auth.models import User
from django.template.loader import render_to_string

from mica.notifications.models import Kind, notify


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For password resets and challenge news.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self):
        email = self.cleaned_data["email"]
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address exists already.")
        return email


class ResendVerificationForm(forms.Form):
    email = forms.EmailField(label="The e-mail address you signed up with")


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's reset form, its e-mail written to the outbox and sent by a worker (never from the request)."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        notify([context["user"]], Kind.PASSWORD_RESET, subject, body)
