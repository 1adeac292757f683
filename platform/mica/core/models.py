"""Behaviour shared by the models whose rows move through statuses."""

from django.db import models, transaction
from django.utils import timezone


class IllegalMove(Exception):
    pass


class StatusMachine(models.Model):
    """A row with one status field and the legal moves between statuses written in one place.

    Subclasses define ``status`` (a CharField with choices) and ``TRANSITIONS`` ({from: {to}}).
    `move` is a conditional update: it happens only if the row is still in the status this
    object holds, so two workers can never both claim the same row.
    """

    TRANSITIONS = {}

    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def move(self, to_status, reason="", **fields):
        """Moves to `to_status`; True when this call moved the row, False when another process
        changed it first. Extra fields are written in the same update."""
        from_status = self.status
        if to_status not in self.TRANSITIONS[from_status]:
            raise IllegalMove(f"a {self._meta.verbose_name} cannot move from {from_status} to {to_status}")
        with transaction.atomic():
            updated = type(self).objects.filter(pk=self.pk, status=from_status).update(
                status=to_status, status_reason=reason, status_changed_at=timezone.now(), **fields
            )
            if not updated:
                return False
            self.record_move(from_status, to_status, reason)
        self.refresh_from_db()
        return True

    def record_move(self, from_status, to_status, reason):
        """Called inside the move's transaction; a model that keeps a history writes it here."""
