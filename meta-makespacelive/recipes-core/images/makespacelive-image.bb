# nooelint: oelint.var.suggestedvar.SECTION - builds no packages
SUMMARY = "makespacelive appliance image: read-only A/B root with the streaming service"
DESCRIPTION = "The firmware of the makespacelive livestreaming box: the streaming service, \
               NetworkManager for the Wi-Fi portal, RAUC for A/B updates, on a read-only root."
HOMEPAGE = "https://github.com/makespacelive/makespacelive"
BUGTRACKER = "https://github.com/makespacelive/makespacelive/issues"
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "ssh-server-openssh"

IMAGE_INSTALL = "\
    packagegroup-core-boot \
    makespacelive \
    makespacelive-data \
    rauc \
    u-boot-env \
    libubootenv-bin \
    networkmanager \
    networkmanager-nmcli \
    wpa-supplicant \
    wireless-regdb-static \
    dnsmasq \
    avahi-daemon \
    ca-certificates \
    glib-networking \
    kernel-modules \
    ${MACHINE_EXTRA_RRECOMMENDS} \
"
# MACHINE_EXTRA_RRECOMMENDS brings the Pi's Wi-Fi firmware (meta-raspberrypi machine confs).
# wireless-regdb-static: the regulatory database the kernel loads from /lib/firmware, so
# that the country the service sets (network.country) reaches the radio.

# rauc would pull in rauc-mark-good, which marks every slot good as soon as it boots;
# here the service marks a slot good once it is ready (after an update: healthy).
BAD_RECOMMENDATIONS += "rauc-mark-good"

# The kernel boots from the slot's own /boot, so an update replaces it with the root.
IMAGE_INSTALL:append = " kernel-image"

IMAGE_FSTYPES:append = " ext4"
IMAGE_LINGUAS = ""
# Room for logs in RAM and the service's own files; the root is read-only anyway.
IMAGE_ROOTFS_EXTRA_SPACE = "65536"
