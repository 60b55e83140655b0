# dm-verity, squashfs and nbd for RAUC verity bundles (the fragment linux-yocto uses).
FILESEXTRAPATHS:prepend:makespacelive := "${THISDIR}/../../../../recipes-kernel/linux/files:"
SRC_URI:append:makespacelive = " file://makespacelive.cfg"
