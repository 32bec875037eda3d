"""Policy files: the typed model (`model`), loading and validation (`loader`), JSON Schema."""
