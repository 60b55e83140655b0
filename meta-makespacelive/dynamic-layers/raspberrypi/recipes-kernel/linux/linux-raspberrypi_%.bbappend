# dm-verity, squashfs and nbd for RAUC verity bundles (the fragment linux-yocto uses).
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/../../../../recipes-kernel/linux/files:"
SRC_URI:append:makespacelive-os = " file://makespacelive.cfg"
