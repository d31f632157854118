// The image codecs, compiled here from Debian's stb headers instead of linked
// from its libstb: only the PNG and JPEG decoders exist (a BMP, GIF or PSD
// renamed .png is refused, not decoded; image_folder.cpp bounds the pixels a
// header may declare before decoding), and the sanitizer and fuzzing builds
// instrument the decoder itself, not only the code around it. The symbols
// stay inside libmipin, so a program that links libstb too sees no clash.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STB_IMAGE_WRITE_IMPLEMENTATION

// The C library first, outside the hidden region: declared inside it, its
// functions would be hidden references that nothing defines.
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC visibility push(hidden)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC visibility pop
