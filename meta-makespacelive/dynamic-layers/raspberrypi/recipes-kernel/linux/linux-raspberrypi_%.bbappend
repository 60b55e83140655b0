# dm-verity, squashfs and nbd for RAUC verity bundles (the fragment linux-yocto uses).
FILESEXTRAPATHS:prepend := "${THISDIR}/../../../../recipes-kernel/linux/files:"
SRC_URI += "file://makespacelive.cfg"
