"""One module per provisioner type; :mod:`core.engine.steps.provision` runs them in order."""
