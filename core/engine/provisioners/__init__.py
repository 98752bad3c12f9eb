"""One module per provisioner type; :mod:`amibake.core.engine.steps.provision` runs them in
order."""
