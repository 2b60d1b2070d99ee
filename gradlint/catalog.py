"""The rule codes, fixed by the catalog (shared/spec/rules.md): the configuration checks codes against
them without loading the rules, and the registry accepts only these."""

CODES = (
    "GL001", "GL101", "GL102", "GL103", "GL104", "GL201", "GL301", "GL302", "GL303",
    "GL401", "GL402", "GL403", "GL404", "GL405",
)
