// A deliberate violation: the layering check must reject this file.
#include <chrono>
