# The A/B boot script with boot counters (one template with QEMU's, in
# recipes-bsp/u-boot/files) instead of meta-raspberrypi's single-root one: rendered into
# the boot.cmd.in the recipe compiles (nothing of its own @@…@@ words is left in it).
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/../../../../recipes-bsp/u-boot/files:"

inherit_defer ${@d.getVar("MAKESPACELIVE_TEMPLATE_CLASS") or ""}

SRC_URI:append:makespacelive-os = " file://makespacelive-boot.cmd.in"
MAKESPACELIVE_TEMPLATES:makespacelive-os = "makespacelive-boot.cmd.in:boot.cmd.in"
