/* Arduino.h (stand-in) - the slice of the arduino-esp32 core API that
 * OtaFleet.cpp and the example use, declared with the real signatures
 * (arduino-esp32 3.x, cores/esp32), so `make glue-check` can compile the
 * glue on a PC without the ESP32 toolchain. Declarations only: nothing is
 * linked or run. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef ESP_ARDUINO_VERSION_MAJOR
#define ESP_ARDUINO_VERSION_MAJOR 3
#endif
#define LOW 0x0
#define HIGH 0x1

class String {
public:
    String(const char *cstr = "");
    String(const String &other);
    String &operator=(const String &rhs);
    ~String();
    const char *c_str() const;
    unsigned int length() const;
    String &operator+=(const String &rhs);
    String operator+(const char *rhs) const;
    bool operator==(const char *cstr) const;
    void replace(const char *find, const char *replace);
    String substring(unsigned int beginIndex) const;
};

class Print {
public:
    virtual ~Print() {}
    virtual size_t write(uint8_t) = 0;
    virtual size_t write(const uint8_t *buffer, size_t size);
    size_t printf(const char *format, ...) __attribute__((format(printf, 2, 3)));
    size_t print(const char *s);
    size_t println(const char *s);
    size_t println(const String &s);
    virtual void flush() {}
};

class Stream : public Print {
public:
    virtual int available() = 0;
    virtual int read() = 0;
    virtual int peek() = 0;
};

class HardwareSerial : public Stream {
public:
    void begin(unsigned long baud);
    size_t write(uint8_t) override;
    int available() override;
    int read() override;
    int peek() override;
};
extern HardwareSerial Serial;

class IPAddress {
public:
    IPAddress();
    IPAddress(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
    bool operator==(const IPAddress &addr) const;
    String toString() const;
};

class EspClass {
public:
    void restart();
};
extern EspClass ESP;

unsigned long millis(void);
void delay(uint32_t ms);
