"""Mica's anonymizer: DICOM (PS3.15 Annex E Basic Profile), PNG and JPEG de-identification.

A library with no web framework in it: functions take paths and bytes and return plain data.
"""

from . import synthetic
from .dicom import Quarantine, anonymize_dataset, anonymize_dicom_file
from .keys import KeyFileError, key_fingerprint, load_key, new_key, new_key_file
from .preview import render_preview
from .profile import PROFILES, Profile, annex_e_table
from .report import FileOutcome, OriginalIdentifiers, Report
from .tree import anonymize_tree

__all__ = [
    "FileOutcome",
    "KeyFileError",
    "OriginalIdentifiers",
    "PROFILES",
    "Profile",
    "Quarantine",
    "Report",
    "anonymize_dataset",
    "anonymize_dicom_file",
    "anonymize_tree",
    "annex_e_table",
    "key_fingerprint",
    "load_key",
    "new_key",
    "new_key_file",
    "render_preview",
    "synthetic",
]
