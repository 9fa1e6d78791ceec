"""Search spaces: networks built from mutables."""
