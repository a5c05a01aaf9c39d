"""``PluginSandbox``: restricted execution of an untrusted plugin's module, in its worker
(and in-process, as 1.0 offered it)."""
