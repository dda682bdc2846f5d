/* host_image.h - what the simulated device learns from an image file.
 *
 * Why it exists: on a real ESP32 the client reads its identity from the
 * running app (esp_app_get_description(), esp_partition_get_sha256()) and
 * the bootloader refuses a corrupt image. The host device does the same with
 * the .bin file that plays its "running partition".
 */
#ifndef HOST_IMAGE_H
#define HOST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct host_image {
    char chip[24];       /* IDF target name, "esp32", "esp32s3", ... */
    char version[33];    /* esp_app_desc_t.version */
    char project[33];    /* esp_app_desc_t.project_name */
    char sha256[65];     /* what esp_partition_get_sha256 returns for it */
    char file_sha256[65];/* SHA-256 of the whole file */
    size_t size;
} host_image;

/* Read an app image. Returns 0, or -1 with a reason on stderr. */
int host_image_read(const char *path, host_image *out);

/* Check it as the bootloader / esp_image_verify would: magic, segments
 * within the file, XOR checksum, appended SHA-256. 0 if bootable. */
int host_image_verify(const uint8_t *data, size_t len, char *why, size_t why_cap);

#endif /* HOST_IMAGE_H */
