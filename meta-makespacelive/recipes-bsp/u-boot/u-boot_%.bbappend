# U-Boot's environment location for libubootenv on every machine (uboot.env and its
# redundant copy on the boot partition); on qemuarm64 also U-Boot built with its
# environment there (as the Pi's is) and the A/B boot script (on the Pi, rpi-u-boot-scr
# builds it from the same template); on the Pi a bootm limit the kernel fits in.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"

inherit_defer ${@d.getVar("MAKESPACELIVE_TEMPLATE_CLASS") or ""}

SRC_URI:append:makespacelive-os = " file://fw_env.config.in file://redundant-env.cfg"
MAKESPACELIVE_TEMPLATES:makespacelive-os = "fw_env.config.in:fw_env.config"

SRC_URI:append:makespacelive-os:qemuarm64 = " \
    file://makespacelive-boot.cmd.in \
    file://env-on-boot-partition.cfg \
"
MAKESPACELIVE_TEMPLATES:append:makespacelive-os:qemuarm64 = " makespacelive-boot.cmd.in:boot.cmd"
UBOOT_ENV:makespacelive-os:qemuarm64 = "boot"
UBOOT_ENV_SUFFIX:makespacelive-os:qemuarm64 = "scr"

SRC_URI:append:makespacelive-os:raspberrypi3 = " file://bootm-len.cfg"
SRC_URI:append:makespacelive-os:raspberrypi0-wifi = " file://bootm-len.cfg"
