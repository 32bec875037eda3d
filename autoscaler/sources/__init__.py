"""Metric sources behind one interface (`base.Source`), built from policy specs by `registry`."""
