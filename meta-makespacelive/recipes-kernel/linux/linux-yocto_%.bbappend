# dm-verity, squashfs and nbd for RAUC verity bundles, FAT for the boot partition, the
# watchdog core; on qemuarm64 QEMU's i6300esb watchdog.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"
SRC_URI:append:makespacelive-os = " file://makespacelive.cfg"
SRC_URI:append:makespacelive-os:qemuarm64 = " file://qemu-watchdog.cfg"
