# nooelint: oelint.var.suggestedvar.SECTION - builds no packages
SUMMARY = "makespacelive update bundle: the root filesystem for the inactive A/B slot"
DESCRIPTION = "A signed RAUC bundle (verity format) holding makespacelive-image's root \
               filesystem, installed into the inactive slot over the air."
HOMEPAGE = "https://github.com/makespacelive/makespacelive"
BUGTRACKER = "https://github.com/makespacelive/makespacelive/issues"
LICENSE = "MIT"

inherit bundle

# Out of world builds, as every image is (image.bbclass): it packs makespacelive-image,
# which needs the distro's machines (U-Boot, its environment, the A/B layout).
EXCLUDE_FROM_WORLD = "1"

RAUC_BUNDLE_COMPATIBLE = "makespacelive-${MACHINE}"
RAUC_BUNDLE_VERSION = "${DISTRO_VERSION}"
RAUC_BUNDLE_DESCRIPTION = "makespacelive ${DISTRO_VERSION} for ${MACHINE}"
# verity: the bundle is checked block by block as it is installed (dm-verity).
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "makespacelive-image"
RAUC_SLOT_rootfs[fstype] = "ext4"
