"""Result records: the typed dataclasses of a result file, their JSON codec, schema and migrations."""
