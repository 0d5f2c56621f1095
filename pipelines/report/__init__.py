"""A run's report as people look at it: the plots, ``report.html``, and their rebuild from
a run folder (``hyperpilot report DIR``)."""
