# fstab for the read-only root, the data partition and the boot partition (wic's own
# fstab edits are off), rendered from the layout values.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"

inherit_defer ${@d.getVar("MAKESPACELIVE_TEMPLATE_CLASS") or ""}

SRC_URI:append:makespacelive-os = " file://fstab.in"
MAKESPACELIVE_TEMPLATES:makespacelive-os = "fstab.in:fstab"
