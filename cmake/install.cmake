# Installs libflowgrad, its public headers and a CMake package config, so that another project can
# find_package(flowgrad) and link flowgrad::flowgrad.
include(CMakePackageConfigHelpers)

install(TARGETS flowgrad EXPORT flowgradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY tensor autodiff flows
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/flowgrad
  FILES_MATCHING PATTERN "*.hpp" PATTERN "detail" EXCLUDE)
install(FILES flowgrad.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/flowgrad)
install(EXPORT flowgradTargets NAMESPACE flowgrad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)

configure_package_config_file(cmake/flowgradConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/flowgradConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/flowgradConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/flowgradConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/flowgradConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)
