# fstab for the read-only root and the data partition (wic's own fstab edits are off).
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"
