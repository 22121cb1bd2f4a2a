"""Generated from protos/meshtui/demo/emojivoto_v1 (`make protos`): the demo apps' wire."""
