#!/usr/bin/env python
"""Django's command-line utility for Mica. The site's code lives in ``platform/``."""

import os
import sys
from pathlib import Path

# ``platform/`` is a source folder, not a package: importing it as one would shadow the
# standard library's ``platform`` module.
sys.path.insert(0, str(Path(__file__).resolve().parent / "platform"))


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
