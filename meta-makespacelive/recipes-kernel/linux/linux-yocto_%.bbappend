# dm-verity, squashfs and nbd for RAUC verity bundles; MTD for U-Boot's environment
# in QEMU's flash.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"
SRC_URI:append:makespacelive-os = " file://makespacelive.cfg"
SRC_URI:append:makespacelive-os:qemuarm64 = " file://qemu-flash.cfg"
