// libsrtp2 from Debian's libsrtp2-dev (2.5.0).
#include <srtp2/srtp.h>
