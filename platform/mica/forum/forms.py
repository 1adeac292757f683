from django import forms

from .models import Post


class PostForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}),
                           max_length=Post.MAX_BODY_CHARS,
                           help_text="Markdown: **bold**, `code`, ```fenced code blocks```, > quotes, links.")
    # A plain file field: Attachment.reencode is the one check of what the file holds.
    image = forms.FileField(required=False, help_text="Optional: PNG, JPEG, GIF or WebP.",
                            widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}))
    image_alt = forms.CharField(required=False, max_length=300, label="What the image shows",
                                help_text="Read aloud to readers who cannot see it.")

    def clean(self):
        data = super().clean()
        if data.get("image") and not (data.get("image_alt") or "").strip():
            self.add_error("image_alt", "Describe what the image shows.")
        return data

    def images(self):
        image = self.cleaned_data.get("image")
        return [(image, self.cleaned_data["image_alt"])] if image else []


class ThreadForm(PostForm):
    title = forms.CharField(max_length=200)
    announcement = forms.BooleanField(required=False, label="Announcement (pinned; every participant is told)")
    writeup = forms.BooleanField(required=False, label="This is my team's solution write-up")
    field_order = ["title", "body", "image", "image_alt", "announcement", "writeup"]

    def __init__(self, *args, is_organizer=False, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_organizer:
            del self.fields["announcement"]
        if team is None:
            del self.fields["writeup"]


class ModerationForm(forms.Form):
    action = forms.ChoiceField(choices=[("hide", "Hide"), ("unhide", "Show again"), ("delete", "Delete")])
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class ReportForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             label="What is wrong with this post?")
