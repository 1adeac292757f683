"""One module per task: its file formats, validation and scoring."""
