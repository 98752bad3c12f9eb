"""The amazon-ebs build steps, one module each, run and cleanup side by side."""
