"""amibake's terminal front ends: the Textual app and the headless CLI."""
