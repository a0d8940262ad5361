"""The ground floor: the data model and the errors every layer may raise (imports nothing above it)."""
