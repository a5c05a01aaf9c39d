"""What a plugin is, read without running its code: manifests (JSON and YAML), discovery,
the runtime configuration, the 1.0 security helpers, data folders, the facts a worker
reports, where a plugin's file sits in its package, and its requirements checked.

It never imports the supervisor, the client or the CLI.
"""
