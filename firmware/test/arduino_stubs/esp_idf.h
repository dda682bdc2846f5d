/* esp_idf.h (stand-in) - the ESP-IDF 5.x types and functions OtaFleet.cpp
 * uses (esp_ota_ops.h, esp_partition.h, esp_app_desc.h, esp_random.h,
 * esp_timer.h, esp_log.h, freertos/task.h), declared as in ESP-IDF; the other
 * stand-in IDF headers in this folder include this one. See Arduino.h in
 * this folder. */
#pragma once
#include <stdarg.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef int esp_err_t;
#define ESP_OK 0
typedef struct {
    uint32_t address;
    uint32_t size;
} esp_partition_t;
typedef enum {
    ESP_OTA_IMG_NEW = 0x0U,
    ESP_OTA_IMG_PENDING_VERIFY = 0x1U,
    ESP_OTA_IMG_VALID = 0x2U,
    ESP_OTA_IMG_INVALID = 0x3U,
    ESP_OTA_IMG_ABORTED = 0x4U,
    ESP_OTA_IMG_UNDEFINED = 0xFFFFFFFFU
} esp_ota_img_states_t;
typedef struct {
    uint32_t magic_word;
    uint32_t secure_version;
    uint32_t reserv1[2];
    char version[32];
    char project_name[32];
    char time[16];
    char date[16];
    char idf_ver[32];
    uint8_t app_elf_sha256[32];
    uint32_t reserv2[20];
} esp_app_desc_t;
const esp_partition_t *esp_ota_get_running_partition(void);
const esp_partition_t *esp_ota_get_next_update_partition(const esp_partition_t *start_from);
esp_err_t esp_ota_get_state_partition(const esp_partition_t *partition, esp_ota_img_states_t *ota_state);
esp_err_t esp_ota_mark_app_valid_cancel_rollback(void);
esp_err_t esp_ota_mark_app_invalid_rollback_and_reboot(void);
esp_err_t esp_partition_get_sha256(const esp_partition_t *partition, uint8_t *sha_256);
const esp_app_desc_t *esp_app_get_description(void);     /* IDF 5 */
const esp_app_desc_t *esp_ota_get_app_description(void); /* IDF 4 */
uint32_t esp_random(void);
typedef int (*vprintf_like_t)(const char *, va_list);
vprintf_like_t esp_log_set_vprintf(vprintf_like_t func);
typedef struct tskTaskControlBlock *TaskHandle_t;
TaskHandle_t xTaskGetCurrentTaskHandle(void);
int64_t esp_timer_get_time(void);
#ifdef __cplusplus
}
#endif
