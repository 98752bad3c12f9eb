"""The build engine: the amazon-ebs flow as steps, each with its run and its cleanup.

Entry points: :func:`amibake.core.engine.build.run_build` for one builder and
:func:`amibake.core.engine.build.run_builds` for a template's builders in parallel.
Events (``amibake.core.events``) are the only output; the engine imports no UI.
"""
