// mipin::Error is header-only; this unit anchors nothing but keeps the util
// folder's layout regular for future non-inline helpers.
#include "mipin/util/error.h"
