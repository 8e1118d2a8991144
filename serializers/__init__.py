"""marshmallow schemas only (XIn / XOut / XPatch): camelCase on the wire, unknown keys ignored."""
