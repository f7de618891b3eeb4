"""Names of the instance-selection modes and bundled data sets (no imports: the CLI's help reads them)."""

SELECTION_MODES = ("single", "multi_level", "multi_view")
BUILTIN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "mnist5000")
