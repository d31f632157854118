#pragma once
// A TCP port on the loopback that no one listens on now, picked by the kernel.
// Another program may still take it before the caller binds it: callers that
// cannot afford that retry on "address in use".

namespace mipin {

int free_port();

}  // namespace mipin
