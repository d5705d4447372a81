"""Bridges from vtr to other tools. Each subpackage is optional: it imports its tool, which only its
own extra installs, and nothing else in vtr imports it."""
